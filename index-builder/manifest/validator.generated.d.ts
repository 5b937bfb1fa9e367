// Types of validator.generated.js (ajv standalone output; see standalone.ts).
import type { ValidateFunction } from 'ajv';

declare const validate: ValidateFunction;

export { validate };
export default validate;
