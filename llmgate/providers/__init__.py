"""Vendor providers. Each module imports its SDK and is loaded only when first used."""
