"""Training the tiny reasoner: a Wan2.2-I2V-A14B-shaped pipeline fitted on cos-ray's own maze generator.

Two stages, one resumable run directory: (1) the VAE is fitted for reconstruction on the task's frames and frozen;
(2) the transformer is trained by flow matching on latents built by the pipeline's own `prepare_latents`, so training
and inference cannot drift apart. `python -m cos_ray.training CONFIG` (or `cos-ray train CONFIG`) runs both.
Nothing here imports Ray.
"""
