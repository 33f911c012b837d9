"""benchmarks/build_speed.py's parts, by phase: common (packages, targets, helpers), measure (the rusage
wrapper), outputs (compile's timings, wheels, archs), machine (sdists, fingerprint, dry-run plan), bench (the run),
phase_compile (cold, warm), phase_upstream, phase_kernels (kernels-aa, kernels), report (table, merge, repeats).
build_speed.py is the command line and re-exports these names."""
