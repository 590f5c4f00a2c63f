/** The node's home directory (`--home`): every durable file lives under it. */
import { Context } from "effect"

export class Home extends Context.Service<Home, { readonly path: string }>()("kernel/Home") {}
