"""Int8 Mobile-Former: quantization recipes, QAT, export, benchmarks and reports."""
