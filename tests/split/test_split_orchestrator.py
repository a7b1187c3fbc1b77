"""SplitModel without processes: the launch options it derives, and planning around losses."""

from __future__ import annotations

from aria.backends import WorkerLaunch
from aria.catalog import ModelId
from aria.split import Candidate, LocalNode, ModelLayout, Placement, PlanPolicy, SplitModel

MIB = 1024**2
LAYOUT = ModelLayout(
    "m",
    (10 * MIB,) * 6,
    2 * MIB,
    3 * MIB,
    n_embd=64,
    n_embd_kv=64,
    n_head=2,
    n_ff=64,
    n_vocab=1000,
    context_length=512,
)
PEERS = [
    Candidate(f"p{i}", f"127.0.0.1:{7000 + i}", 200 * MIB, 2, 0.001 * (i + 1)) for i in range(3)
]


async def _never_called(placement: Placement) -> dict[str, str]:
    raise AssertionError("no diagnosis expected")


def _model(policy: PlanPolicy) -> SplitModel:
    return SplitModel(
        model_id=ModelId("m"),
        layout=LAYOUT,
        base_launch=WorkerLaunch(model_path="/m.gguf", n_ctx=256, threads=2),
        local=LocalNode(100 * MIB, 2),
        candidates=lambda: PEERS,
        policy=policy,
        diagnose=_never_called,
    )


def test_launch_carries_the_placement_and_survives_the_command_line() -> None:
    split = _model(PlanPolicy(min_peers=2, max_local_layers=0))
    placement = split.plan()
    assert split.policy.n_ctx == 256  # the backend's context sizes the K/V cache
    launch = split.launch_for(placement)
    # The most preferred peer (lowest RTT) holds the output head: the last device.
    assert launch.rpc_servers == placement.endpoints == ("127.0.0.1:7001", "127.0.0.1:7000")
    assert launch.tensor_split == placement.tensor_split
    assert launch.n_gpu_layers == placement.n_gpu_layers == LAYOUT.n_layers + 1
    assert WorkerLaunch.from_json(launch.argv()[-1]) == launch


def test_dead_workers_are_left_out_of_the_next_plan() -> None:
    split = _model(PlanPolicy(min_peers=2, max_local_layers=0))
    split.dead["127.0.0.1:7000"] = "connection refused"
    assert split.plan().endpoints == ("127.0.0.1:7002", "127.0.0.1:7001")


def test_a_model_that_fits_keeps_the_ordinary_launch() -> None:
    split = _model(PlanPolicy())
    split.local = LocalNode(1024 * MIB, 2)
    placement = split.plan()
    assert placement.shares == ()
    assert split.launch_for(placement) == split.base_launch
