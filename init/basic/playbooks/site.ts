/**
 * The site: every play, in order.
 *
 *   npx provision run site -i inventory/hosts.yml --check --diff    # what would change
 *   npx provision run site -i inventory/hosts.yml                   # change it
 */
import {definePlaybook} from 'provision';

export default definePlaybook({
  name: 'site',
  plays: [
    // `roles/hello/index.ts`; add roles of your own beside it, or the shipped ones from 'provision/roles'.
    {name: 'hello on every host', hosts: 'all', roles: ['hello']},
  ],
});
