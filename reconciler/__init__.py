"""The reconciler: controllers that act on what the webhook decided.

Each controller is watch -> queue -> ``observe(key)`` (I/O) -> ``plan(observed, now)`` (pure) ->
``apply`` (one idempotent call per action). The RayService controller (``reconciler.rayservice``)
acts on the ``raysvc.io/`` annotations of the contract; the RayCluster controller
(``reconciler.raycluster``) makes the Pods and the head Service of each RayCluster in the
standalone profile. It may import ``rayservice`` (the pure domain), never ``webhook``,
``localkube`` or the CLI.
"""
