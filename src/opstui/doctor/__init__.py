"""``opstui doctor``'s checks, Textual-free, each a ``Check`` with a verdict.

``run_doctor`` runs them all: Python and the packages (``local``), which
config is read and whether it loads (``local``), the store and the clocks
that wrote into it (``store``), each configured source polled once on the
poller's own path (``sources``), and the terminal (``local``). A check
that raises becomes its own ``fail`` line: a broken check never hides the
others, and no traceback reaches the operator.
"""

from opstui.doctor.checks import FAIL, OK, SKIP, VERDICTS, WARN, Check
from opstui.doctor.run import run_doctor

__all__ = ["FAIL", "OK", "SKIP", "VERDICTS", "WARN", "Check", "run_doctor"]
