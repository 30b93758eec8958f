"""Metrics: sacreBLEU/chrF for translation, accuracy/F1 for classification."""
