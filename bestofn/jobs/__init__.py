"""Job kinds above the one loop: the barrier-free adaptive job (`adaptive`), and `kinds`, the
one place a run's questions become jobs of its kind (fixed N, adaptive, search)."""
