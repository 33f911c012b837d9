"""The plan: options + the environment -> one frozen BuildPlan (toolkit, host compiler, archs, jobs, schedule,
launcher, packages), every choice with its reason, before anything runs."""
