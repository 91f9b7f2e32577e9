"""The GS1-Conformant resolver: what a Digital Link answers besides the consumer page (its
linkset, its links by type), the resolver description file, and the public resources the
links lead to (a batch's certificates, a batch's or a product's recall status)."""
