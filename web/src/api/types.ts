// The API's resources: one file for the UI and the command line (see its header).
export type * from '../../../src/services/api/resource-types.ts';
