"""What a consumer meets: the scan page behind a unit's QR code, its verdict and journey."""
