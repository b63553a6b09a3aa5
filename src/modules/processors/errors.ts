import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const ProcessorErrors = defineErrors({
  PROCESSORS_INPUT_INVALID: { status: 400, description: 'A processor needs a name, declared purposes, declared categories and a country code; nothing was recorded.' },
  PROCESSORS_NOT_FOUND: { status: 404, description: 'No current recipient with that id.' },
});
registerErrors(ProcessorErrors);
