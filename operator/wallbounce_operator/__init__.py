"""The WallBounceRollout operator: observe (Prometheus) → decide (pure ladder logic) → act (route weights, status)."""
