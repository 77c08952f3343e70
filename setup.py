"""Builds the `poststack` wheel (pyproject.toml): the command's package from cli/, and the collection's files
copied into ansible_collections/poststack/core, where Ansible finds collections on sys.path. The version is the
collection's (galaxy.yml)."""
import os
import shutil

import yaml
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
# What a run of the collection needs (the roles read containers/ and migrations/ beside them); tests, docs,
# benchmarks and the development scripts stay out.
COLLECTION = ["galaxy.yml", "README.md", "meta", "plugins", "roles", "playbooks", "containers", "migrations",
              "inventories", "changelogs/changelog.yaml"]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return str(yaml.safe_load(handle)["version"])


class BuildWithCollection(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "ansible_collections", "poststack", "core")
        shutil.rmtree(dest, ignore_errors=True)
        for part in COLLECTION:
            source = os.path.join(ROOT, part)
            target = os.path.join(dest, part)
            if os.path.isdir(source):
                shutil.copytree(source, target, ignore=SKIP, symlinks=False)
            elif os.path.isfile(source):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(source, target)
            else:  # a wheel without it would install a collection that fails at run time
                raise FileNotFoundError("setup.py: the collection's %s is missing from %s" % (part, ROOT))


setup(version=galaxy_version(), cmdclass={"build_py": BuildWithCollection})
