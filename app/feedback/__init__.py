"""Feedback from consumers and merchants: delivery ratings, reviews and complaints."""
