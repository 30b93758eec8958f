"""Side-by-side speed comparisons (`make bench`); not part of the test suite."""
