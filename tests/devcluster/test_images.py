"""Reading which step images a `buildah bud --layers` run made or reused (the cache to keep)."""

from e2e.devcluster.images import step_images

# Trimmed from a real run of buildah 1.28: step 2 and 5 reused, steps 3 and 6 new, then the
# final stage's commit.
BUD_OUTPUT = """\
[1/3] STEP 1/6: FROM localhost/coalmine/python-base:3.11-bookworm-3cb96242 AS deps
[1/3] STEP 2/6: ARG EXTRAS=onnx,skops
--> Using cache a86e550a1b8e4fac2d264bbe64696ba2c5cf23e7c47bae8a1254e0c8cce5806e
--> a86e550a1b8
[1/3] STEP 3/6: COPY pyproject.toml ./
--> 5a0df07426a
[2/3] STEP 1/5: FROM 17dd6e8482a72c0ba571fa75559452216e5ab95620a3deddf6476f8237e5f224 AS build
[2/3] STEP 5/5: RUN /opt/build-tools/bin/pip wheel --no-deps --wheel-dir /wheels .
--> Using cache e5397c6f59aec5cefd231bbf520d9ef608fdaddf7884ab8e13152f601e625e7f
--> e5397c6f59a
[3/3] STEP 6/10: COPY --from=build /staging/opt/venv /opt/venv
Collecting coalmine --> not an id
--> 9b7a2afb2e9
[3/3] COMMIT localhost/coalmine/serving:building
--> 882e65ab1a3
Successfully tagged localhost/coalmine/serving:building
882e65ab1a3a3b7bb46454919e2d961c8c06912235c88b7e2fed41f945f7afe5
"""


def test_every_step_image_is_read_in_full_or_abbreviated_form() -> None:
    assert step_images(BUD_OUTPUT) == {
        "a86e550a1b8e4fac2d264bbe64696ba2c5cf23e7c47bae8a1254e0c8cce5806e",
        "a86e550a1b8",
        "5a0df07426a",
        "e5397c6f59aec5cefd231bbf520d9ef608fdaddf7884ab8e13152f601e625e7f",
        "e5397c6f59a",
        "9b7a2afb2e9",
        "882e65ab1a3",
    }


def test_base_images_named_in_from_lines_are_not_step_images() -> None:
    assert not any(image_id.startswith("17dd6e") for image_id in step_images(BUD_OUTPUT))
