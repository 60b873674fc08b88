"""The stages of `hfkdq.pipeline.run_experiment`, one module per concern, in the order they run:
`run_setup` (checks before any work), `training` (teacher, student, plain baseline; `scoring` is their
one evaluation loop), `results` (results.json), `delivery` (quantize, publish)."""
