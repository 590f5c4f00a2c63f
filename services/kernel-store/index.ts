/** The `KernelStore` port on LMDB: the public surface. */
export { KernelStoreLmdb } from "./KernelStoreLmdb.ts"
