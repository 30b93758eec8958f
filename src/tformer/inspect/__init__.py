"""Looking inside models: attention weights of one sentence with token labels, and what a token attends to."""
