// s3rver ships no types; this is the part of its API the tests use.
declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory: string;
    configureBuckets?: { name: string }[];
  }
  /** An object as s3rver's store takes it (`lib/models/object.js`). */
  interface S3rverObject {
    readonly bucket: string;
    readonly key: string;
    readonly content: NodeJS.ReadableStream | Buffer;
    readonly metadata: Record<string, string>;
  }
  /**
   * The parts of s3rver's filesystem store (`lib/stores/filesystem.js`) that `putsWhole` and
   * `bucketConfigsKept` replace or call.
   */
  export interface S3rverStore {
    /** A bucket's (`key` undefined) or an object's configuration of `type`, or null when it has none. */
    getSubresource(bucket: string, key: string | undefined, type: string): Promise<unknown>;
    /** The bucket, or null when there is none. */
    getBucket(bucket: string): Promise<unknown>;
    getResourcePath(bucket: string, key: string, resource: 'object'): string;
    putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
    putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    readonly store: S3rverStore;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
