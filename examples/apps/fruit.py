"""The fruit stand: ``POST /fruit/ ["MANGO", 2]`` answers the price of 2 mangoes.

Three stands keep a price each, set from their ``user_config`` (``{"price": 3}``) so a changed
price applies in place, without new replicas. ``FruitMarket`` is the ingress: it reads
``[fruit, amount]`` and asks the right stand through a ``DeploymentHandle``; an unknown fruit
costs ``-1``. Import path: ``fruit.deployment_graph``.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse


class _Stand:
    DEFAULT_PRICE: float = 1.0

    def __init__(self) -> None:
        self.price = self.DEFAULT_PRICE

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.price = config.get("price", self.DEFAULT_PRICE)

    def check_price(self, amount: float) -> float:
        return self.price * amount


@serve.deployment(user_config={"price": 3})
class MangoStand(_Stand):
    DEFAULT_PRICE = 1.0


@serve.deployment(user_config={"price": 2})
class OrangeStand(_Stand):
    DEFAULT_PRICE = 0.5


@serve.deployment(user_config={"price": 4})
class PearStand(_Stand):
    DEFAULT_PRICE = 0.75


@serve.deployment(num_replicas=2)
class FruitMarket:
    def __init__(
        self, mango: DeploymentHandle, orange: DeploymentHandle, pear: DeploymentHandle
    ) -> None:
        self.stands = {"MANGO": mango, "ORANGE": orange, "PEAR": pear}

    async def __call__(self, request: Request) -> Any:
        try:
            fruit, amount = await request.json()
        except (ValueError, TypeError):
            return JSONResponse({"error": 'expected a JSON list: ["MANGO", 2]'}, status_code=400)
        stand = self.stands.get(fruit)
        if stand is None:
            return -1
        return await stand.check_price.remote(amount)


deployment_graph = FruitMarket.bind(MangoStand.bind(), OrangeStand.bind(), PearStand.bind())
