<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/** The mapping document's store failed (file not writable, database down); nothing was changed. */
final class StoreUnavailable extends \RuntimeException
{
}
