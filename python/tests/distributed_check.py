"""Run under `mpirun -np P`: DilatedAttention(distributed=MPI.COMM_WORLD) on each rank's
shard equals the single-process layer on the whole sequence (output, dx and the
parameter gradients summed over ranks). Exits non-zero on any rank's mismatch."""

import sys

import torch
from mpi4py import MPI

import longnet
from longnet import DilatedAttention

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
torch.manual_seed(0)  # the same weights and data on every rank
options = dict(dim=32, heads=4, segment_lengths=[8, 16], dilation_rates=[1, 2], causal=True)
single = DilatedAttention(**options)
split = DilatedAttention(**options, distributed=comm)
split.load_state_dict(single.state_dict())

tokens = 30  # segments of 16 cross the shard boundary: keys travel between ranks
x = torch.randn(2, tokens, 32, requires_grad=True)
dy = torch.randn(2, tokens, 32)
(single(x) * dy).sum().backward()
y_single = single(x).detach()

begin, end = longnet.sequence_shard(tokens, size, rank)
x_local = x.detach()[:, begin:end].clone().requires_grad_()
y_local = split(x_local)
(y_local * dy[:, begin:end]).sum().backward()

failures = []
if not torch.allclose(y_local, y_single[:, begin:end], atol=1e-5, rtol=1e-4):
    failures.append("y")
if not torch.allclose(x_local.grad, x.grad[:, begin:end], atol=1e-5, rtol=1e-4):
    failures.append("dx")
for (name, p_split), p_single in zip(split.named_parameters(), single.parameters()):
    total = torch.from_numpy(comm.allreduce(p_split.grad.numpy(), op=MPI.SUM))
    if not torch.allclose(total, p_single.grad, atol=1e-4, rtol=1e-4):
        failures.append(name)
print(f"rank {rank}/{size}: tokens [{begin}, {end}) "
      + ("ok" if not failures else f"MISMATCH in {failures}"), flush=True)
all_failures = comm.allreduce(len(failures))
sys.exit(1 if all_failures else 0)
