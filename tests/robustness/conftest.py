"""The robustness campaigns reuse the operator tests' fixtures (CRDs, exporter, Prometheus, operator)."""

from tests.operator.conftest import (  # noqa: F401
    driver,
    exporter,
    operator,
    prometheus,
    pytest_runtest_makereport,  # the operator's log on failure
    wbr_crd,
)
