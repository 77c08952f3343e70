"""``python3 -m pgtwin_agent <action>``: what the ``pgtwin`` entry script runs."""
import sys

from pgtwin_agent.main import main

sys.exit(main(sys.argv[1:]))
