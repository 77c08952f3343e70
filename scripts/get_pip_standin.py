"""Offline stand-in for ansible-test's get-pip.py: installs pip from a wheel on PyPI instead of bootstrap.pypa.io.

scripts/bootstrap.sh renders this file into ~/.ansible/test/cache/ with the wheel path filled in.
"""
import sys

PIP_WHEEL = "@PIP_WHEEL@"


def main() -> None:
    sys.path.insert(0, PIP_WHEEL)
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.exit(pip_main(["install", "--upgrade", "--force-reinstall", *args, PIP_WHEEL]))


if __name__ == "__main__":
    main()
