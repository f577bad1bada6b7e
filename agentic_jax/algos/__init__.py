"""Pure loss and advantage functions, one file per algorithm.

- ``grpo``: group-relative advantages and the GRPO loss (Dr.GRPO and DAPO options);
- ``ppo``: GAE, the clipped value loss and the PPO loss;
- ``sft``: cross-entropy on the agent's tokens;
- ``corrections``: the clipped surrogate and its off-policy corrections (none / tis /
  decoupled) as one function; ``policy``: the objective GRPO and PPO share and the typed
  minibatch; ``kl``: KL estimators; ``masked``: masked distributions and aggregation.
"""
