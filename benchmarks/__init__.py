"""Reference models for checking our estimates against published latencies; not the product's API."""
