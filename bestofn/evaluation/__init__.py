"""Evaluation: the selection methods and rules (`select`), accuracy (`evaluate`), intervals,
curves, subsets, the token budget, benchmark columns, the compute ledger, verifier metrics
(`verifier_eval`, `step_metrics`, `labels`), preference evaluation (`prefs`) and the offline
replay of stopping rules (`adaptive_replay`, `adaptive_curves`). Reads records and scores;
never starts an engine."""
