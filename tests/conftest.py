import os

from hypothesis import HealthCheck, settings

# Deterministic by default (CI must be reproducible); GLUONLOSS_HYPOTHESIS=explore
# turns the randomness back on for local bug hunting.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile("explore" if os.environ.get("GLUONLOSS_HYPOTHESIS") == "explore" else "ci")
