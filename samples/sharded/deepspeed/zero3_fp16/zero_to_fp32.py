#!/usr/bin/env python
# Stand-in for DeepSpeed's deepspeed/utils/zero_to_fp32.py, which DeepSpeed's engine copies here when it
# saves a ZeRO checkpoint. Built by ckpt's samples/make_sharded.py; the real script is not redistributed.
raise SystemExit('install deepspeed and run: python -m deepspeed.utils.zero_to_fp32 . OUTPUT_DIR')
