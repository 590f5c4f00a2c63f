/** `echo <text>`: prints the text. */
import type { Address } from "kinode:process/standard@1.0.0"

export const echo = (_our: Address, args: string): string => args
