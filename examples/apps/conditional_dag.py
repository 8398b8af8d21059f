"""The calculator: ``POST /calc/ ["MUL", 3]`` answers ``"15 pizzas please!"`` (factor 5).

``Multiplier`` and ``Adder`` take their factor and increment from ``user_config``; their
decorators also set ``override_factor``/``override_increment`` environment variables (-2), which
win when present. A config that gives them their own ``ray_actor_options`` replaces the
decorator's whole dict, variables included, which is why the sample's factor 5 applies.
``Router`` is the ingress. Import path: ``conditional_dag.serve_dag``.
"""

from __future__ import annotations

import os
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse


@serve.deployment(
    user_config={"factor": 3},
    ray_actor_options={"runtime_env": {"env_vars": {"override_factor": "-2"}}},
)
class Multiplier:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.factor = config.get("factor", -1)

    def multiply(self, value: float) -> float:
        override = os.environ.get("override_factor")  # noqa: SIM112 (the name test_dag uses)
        return value * (float(override) if override else self.factor)


@serve.deployment(
    user_config={"increment": 2},
    ray_actor_options={"runtime_env": {"env_vars": {"override_increment": "-2"}}},
)
class Adder:
    def __init__(self, increment: float) -> None:
        self.increment = increment

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.increment = config.get("increment", -1)

    def add(self, value: float) -> float:
        override = os.environ.get("override_increment")  # noqa: SIM112
        return value + (float(override) if override else self.increment)


@serve.deployment
class Router:
    def __init__(self, multiplier: DeploymentHandle, adder: DeploymentHandle) -> None:
        self.operations = {"MUL": multiplier.multiply, "ADD": adder.add}

    async def __call__(self, request: Request) -> Any:
        try:
            operation, value = await request.json()
        except (ValueError, TypeError):
            return JSONResponse({"error": 'expected a JSON list: ["MUL", 3]'}, status_code=400)
        method = self.operations.get(operation)
        if method is None:
            return JSONResponse({"error": 'the operation is "ADD" or "MUL"'}, status_code=400)
        amount = await method.remote(value)
        return f"{amount} pizzas please!"


serve_dag = Router.bind(Multiplier.bind(1), Adder.bind(1))
