"""The benchmarks of docs/performance.md. Run each as a module from the checkout:
``python -m bench.NAME``."""
