"""Stand-in pod addresses are claimed machine-wide: two test processes never share 127.77.x."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from e2e.devcluster.standin import SubnetClaim


def test_a_claimed_subnet_is_not_handed_out_again_until_released() -> None:
    first = SubnetClaim.take(start=200)
    second = SubnetClaim.take(start=200)
    try:
        assert second.subnet != first.subnet
        first.release()
        again = SubnetClaim.take(start=200)
        assert again.subnet == first.subnet
        again.release()
    finally:
        second.release()


def test_another_process_holding_a_subnet_makes_this_one_take_the_next() -> None:
    # The other process claims from 210 and waits on stdin, holding its claim.
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from e2e.devcluster.standin import SubnetClaim
            claim = SubnetClaim.take(start=210)
            print(claim.subnet, flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        mine = SubnetClaim.take(start=held)
        try:
            assert mine.subnet != held
        finally:
            mine.release()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    # Its claim died with it.
    after = SubnetClaim.take(start=held)
    try:
        assert after.subnet == held
    finally:
        after.release()
