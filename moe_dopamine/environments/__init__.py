"""Task descriptions and the environments built from them."""
