import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const ProcessorErrors = defineErrors({
  PROCESSORS_INPUT_INVALID: { status: 400, description: 'A processor needs a name, declared purposes, declared categories and a country code; nothing was recorded.' },
  PROCESSORS_NOT_FOUND: { status: 404, description: 'No current recipient with that id.' },
  PROCESSORS_NOTICE_NOT_FOUND: { status: 404, description: 'That recipient was not told of that request (no notice).' },
  PROCESSORS_NOTICE_NOT_DEAD: { status: 409, description: 'Only a notice on the dead-letter list is sent again; this one is pending or confirmed.' },
});
registerErrors(ProcessorErrors);
