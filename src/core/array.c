/* placeholder: bcae_array helpers are written with the npy reader */
typedef int bcae_array_placeholder;
