import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const VaultErasureErrors = defineErrors({
  VAULT_HOLD_PURPOSE_REQUIRED: {
    status: 403,
    description: 'Records held after an erasure (kept for bookkeeping law) are released only for the `legal_obligation` purpose (GDPR Art. 17(3)(b)).',
  },
});
registerErrors(VaultErasureErrors);
