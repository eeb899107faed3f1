// Passes every record on unchanged: the boundary benchmark's JavaScript plugin.
import { defineProcessor } from '@sluice/sdk';

export const processor = defineProcessor((record) => record);
