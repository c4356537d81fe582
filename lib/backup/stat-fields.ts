/**
 * StatFields: the parts of an lstat result a backup keeps, as plain numbers.
 * Its own module so that inspection (inspect.ts) and tree-entry building
 * (metadata.ts) both use it without importing each other.
 */
export interface StatFields {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  ino: number;
  dev: number;
  rdev: number;
  nlink: number;
  mtime: { sec: number; nsec: number };
  ctime: { sec: number; nsec: number };
}
