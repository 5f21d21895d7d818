"""lwd.policy: FlowPolicy (backbone + flow action expert), the flow time convention and integrators,
instruction encoders, InferencePolicy and safetensors checkpoints. See docs/policy.md.

Import the submodules directly (``lwd.policy.flow_policy``, ``lwd.policy.integrators``...); this
package imports nothing so that ``import lwd.policy`` stays cheap.
"""
