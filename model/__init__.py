"""Networks (STCN propagation, fusion, S2M) and strict checkpoint loading.

Stride suffixes: f16 is a feature map at 1/16 of the padded frame size, f8 at 1/8, f4 at 1/4.
"""
