# stand-in for DeepSpeed's utils/zero_to_fp32.py, which engine.save_checkpoint copies here
