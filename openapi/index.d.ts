export declare const specPath: string
export declare function loadSpec(): Record<string, any>
export interface SpecValidator {
  spec: Record<string, any>
  /** Errors of `value` against the schema at `pointer` (`#/components/schemas/…`); empty when valid. */
  validate(pointer: string, value: unknown): string[]
}
export declare function createSpecValidator(spec?: Record<string, any>): SpecValidator
