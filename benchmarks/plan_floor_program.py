"""The floor for the offline plan: interpreter, imports, and the same azure-native resource
types in the same number, under mocks, with no project logic (each gets only the properties
its constructor requires). Run by plan_time.py as its own process with the type list."""

import importlib
import json
import re
import sys

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

MISSING = re.compile(r"Missing required property '(\w+)'")


class Bare(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"id-{args.name}", dict(args.inputs)

    def call(self, args):
        return {}


def declare(index: int, type_token: str) -> None:
    _, module, name = type_token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    kwargs: dict[str, str] = {}
    while True:
        try:
            cls(f"r{index}", **kwargs)
            return
        except TypeError as error:
            match = MISSING.search(str(error))
            if not match:
                raise
            kwargs[match.group(1)] = "x"


def program(types: list[str]) -> None:
    for index, type_token in enumerate(types):
        declare(index, type_token)


types = json.loads(sys.argv[1])
pulumi.runtime.set_mocks(Bare(), project="floor", stack="floor", preview=False)
_sync_await(run_pulumi_func(lambda: program(types)))
