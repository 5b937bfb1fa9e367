/**
 * A stand-in for IAM's policy evaluation (a mock: IAM cannot run here), for the statements of a synthesized
 * template: an explicit Deny wins, then an Allow, else the request is denied. It evaluates the condition
 * operators the stack's policies use (`Null`, `Bool`, `StringEquals`, `StringNotEquals`), and `StringLike`
 * (a listing narrowed by `s3:prefix`: such a grant on `status/` is evaluated, not waved through), and throws
 * on any other, so that a condition added to a policy and not modelled here fails its test rather than pass
 * unread.
 */
import type { Template } from 'aws-cdk-lib/assertions';

export interface Statement {
  readonly effect: 'Allow' | 'Deny';
  readonly actions: readonly string[];
  /** `<bucket>/<key pattern>` or `<bucket>`, the buckets named as the test's local server names them. */
  readonly resources: readonly string[];
  readonly conditions: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

/** What a request brings to the conditions: each key's value, absent when the request has none. */
export type RequestContext = Readonly<Record<string, string | undefined>>;

/**
 * The S3 statements of the template's policies of `type` whose logical id starts with `idPrefix`, their
 * bucket ARNs named by `bucketOf` (from the bucket's logical id); statements on other resources are left out.
 */
export function statementsOf(
  template: Template,
  type: 'AWS::IAM::Policy' | 'AWS::IAM::ManagedPolicy' | 'AWS::S3::BucketPolicy',
  idPrefix: string,
  bucketOf: (logicalId: string) => string | undefined,
): Statement[] {
  const resourceOf = (resource: unknown): string | undefined => {
    const arn = (value: unknown) => (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']?.[0];
    const joined = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (!joined) {
      const id = arn(resource);
      return id && bucketOf(id);
    }
    const [first, rest] = joined[1] as [unknown, string];
    const bucket = bucketOf(arn(first) ?? '');
    return bucket && `${bucket}${rest}`;
  };
  return Object.entries(template.findResources(type))
    .filter(([id]) => id.startsWith(idPrefix))
    .flatMap(
      ([, policy]) =>
        policy.Properties.PolicyDocument.Statement as {
          Effect: 'Allow' | 'Deny';
          Action: string | string[];
          Resource: unknown;
          Condition?: Statement['conditions'];
        }[],
    )
    .map((statement) => ({
      effect: statement.Effect,
      actions: [statement.Action].flat(),
      resources: [statement.Resource]
        .flat()
        .map(resourceOf)
        .filter((r): r is string => r !== undefined),
      conditions: Object.fromEntries(
        Object.entries(statement.Condition ?? {}).map(([operator, keys]) => [
          operator,
          Object.fromEntries(
            Object.entries(keys).map(([key, wanted]) => [
              key,
              Array.isArray(wanted) ? wanted.map(templateText) : templateText(wanted),
            ]),
          ),
        ]),
      ),
    }))
    .filter((statement) => statement.resources.length > 0);
}

/**
 * A condition's value as text: a literal as it is, a reference as its logical id (`Ref` X is `X`, `GetAtt`
 * X.Arn is `X.Arn`), a join of them joined (a bucket policy's `AWS:SourceArn`, the distribution's ARN, is
 * `arn:AWS::Partition:cloudfront::AWS::AccountId:distribution/<its logical id>`).
 */
export function templateText(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
  if (v.Ref !== undefined) return v.Ref;
  if (v['Fn::GetAtt']) return v['Fn::GetAtt'].join('.');
  if (v['Fn::Join']) return v['Fn::Join'][1].map(templateText).join(v['Fn::Join'][0]);
  throw new Error(`the IAM stand-in does not read the condition value ${JSON.stringify(value)}`);
}

/** IAM's wildcards: `*` matches any run of characters, `?` any one. */
export function matches(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) =>
      part
        .split('?')
        .map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.'),
    )
    .join('.*');
  return new RegExp(`^${source}$`).test(value);
}

function conditionHolds(
  operator: string,
  key: string,
  wanted: string | readonly string[],
  context: RequestContext,
) {
  const value = context[key];
  const values = [wanted].flat();
  switch (operator) {
    case 'Null':
      // "true": the request has no such key; "false": it has one.
      return values.some((v) => (v === 'true') === (value === undefined));
    case 'Bool':
      return value !== undefined && values.some((v) => v.toLowerCase() === value.toLowerCase());
    case 'StringEquals':
      return value !== undefined && values.includes(value);
    case 'StringLike':
      return value !== undefined && values.some((v) => matches(v, value));
    case 'StringNotEquals':
      // IAM's negated operators hold where the request has no such key (the policies pair them with Null).
      return value === undefined || !values.includes(value);
    default:
      throw new Error(`the IAM stand-in does not model the condition operator ${operator} (on ${key})`);
  }
}

function applies(statement: Statement, action: string, resource: string, context: RequestContext): boolean {
  return (
    statement.actions.some((pattern) => matches(pattern, action)) &&
    statement.resources.some((pattern) => matches(pattern, resource)) &&
    Object.entries(statement.conditions).every(([operator, keys]) =>
      Object.entries(keys).every(([key, wanted]) => conditionHolds(operator, key, wanted, context)),
    )
  );
}

/** IAM's decision for one action on one resource: an explicit Deny, then an Allow, else denied. */
export function allows(
  statements: readonly Statement[],
  action: string,
  resource: string,
  context: RequestContext = {},
): boolean {
  const relevant = statements.filter((s) => applies(s, action, resource, context));
  return !relevant.some((s) => s.effect === 'Deny') && relevant.some((s) => s.effect === 'Allow');
}
