"""The benchmarks of docs/performance.md; run each as a module from the checkout: python -m bench.NAME."""
