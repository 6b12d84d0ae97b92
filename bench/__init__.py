"""Benchmarks of Consulta against real servers and a real browser (see bench/README.md)."""
