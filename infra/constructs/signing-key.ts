/**
 * The registry signing key lives in Secrets Manager as `{"armoredKey": "...", "passphrase": "..."}`. The
 * stack creates the secret empty; the operator puts the key (see README), so it never passes through CDK,
 * CloudFormation, environment variables or outputs.
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export class SigningKey extends Construct {
  public readonly secret: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description: 'plugindex registry OpenPGP signing key: {"armoredKey": "...", "passphrase": "..."}',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'An OpenPGP signing key cannot be rotated by a Lambda rotator: clients pin it. Rotation is an operator procedure (new key, cross-signed announcement, plugindex rebuild).',
    });
  }
}
